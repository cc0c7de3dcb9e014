-- wrk script: JSON-RPC tools/call on one pre-initialised MCP session (Streamable HTTP).
--
--   wrk -t1 -cN -dDs --timeout 5s -s mcp_call.lua http://127.0.0.1:PORT/mcp -- \
--       SESSION_ID TOKEN TOOL ARGUMENTS_JSON MAX_REQUESTS PROTOCOL_VERSION
--
-- Every request gets its own JSON-RPC id: the transport maps responses to streams by id, so
-- concurrent requests on one session must not share one. Answers are SSE (text/event-stream,
-- one `event: message` / `data: {...}` frame, then the stream ends) unless the server enables
-- JSON responses; both carry the JSON-RPC response, which is checked for a result that is not
-- an error. Each thread stops after MAX_REQUESTS answers (0: no limit; -d bounds the time).
-- done() prints one line starting with WRKJSON.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  session = args[1]
  token = args[2]
  tool = args[3]
  arguments = args[4]
  max_requests = tonumber(args[5]) or 0
  protocol = args[6] or "2025-11-25"
  counter = 0
  ok = 0
  bad = 0
  sse = 0
  json = 0
  first_bad = ""
  path = "/mcp"
  headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["Mcp-Session-Id"] = session,
    ["Mcp-Protocol-Version"] = protocol,
  }
  if token ~= nil and token ~= "" and token ~= "-" then
    headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  counter = counter + 1
  local body = '{"jsonrpc":"2.0","id":"t' .. tid .. '-' .. counter ..
    '","method":"tools/call","params":{"name":"' .. tool .. '","arguments":' .. arguments .. '}}'
  return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
  local ctype = hdrs["Content-Type"] or hdrs["content-type"] or ""
  if ctype:find("text/event-stream", 1, true) then
    sse = sse + 1
  elseif ctype:find("application/json", 1, true) then
    json = json + 1
  end
  if status == 200 and body:find('"result"', 1, true) and not body:find('"isError":true', 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. body:sub(1, 300)
    end
  end
  if max_requests > 0 and ok + bad >= max_requests then
    wrk.thread:stop()
  end
end

local function esc(s)
  return (s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n'):gsub('\r', '\\r'))
end

function done(summary, latency, requests)
  local t_ok, t_bad, t_sse, t_json, t_first = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    t_ok = t_ok + (t:get("ok") or 0)
    t_bad = t_bad + (t:get("bad") or 0)
    t_sse = t_sse + (t:get("sse") or 0)
    t_json = t_json + (t:get("json") or 0)
    if t_first == "" then t_first = t:get("first_bad") or "" end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"sse":%d,"json":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"first_bad":"%s"}\n',
    summary.requests, summary.duration, t_ok, t_bad, t_sse, t_json,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout, esc(t_first)))
end
