/** The clock is injected everywhere so expiry can be tested without sleeping. */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();
