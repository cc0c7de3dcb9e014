/** A clock the test moves by hand, injected into the server instead of sleeping. */
export class TestClock {
  #now: number;
  constructor(start = Date.parse("2026-11-24T12:00:00.000Z")) {
    this.#now = start;
  }
  now = (): Date => new Date(this.#now);
  set(iso: string | number) {
    this.#now = typeof iso === "number" ? iso : Date.parse(iso);
  }
  advance(ms: number) {
    this.#now += ms;
  }
}
