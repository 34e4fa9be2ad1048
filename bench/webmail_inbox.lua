-- wrk script for bench/webmail-inbox.sh: GET of one inbox page, each request carrying the
-- session cookie of one of the logged-in sessions.
--
--   WRK_COOKIES=file (one __Host-mshub value a line)  WRK_THREADS=n (same as wrk's -t)
--   WRK_PATH=/ or /?page=399
--
-- wrk's Lua API has no per-connection hook (request() is called per thread, for whichever of
-- the thread's connections is ready), so the cookies are dealt to the threads (thread k gets
-- lines k+1, k+1+n, ...) and each thread's request() rotates over its own. With as many
-- connections as sessions, every session has about one request in flight at any time, like
-- as many patients reloading their inbox without pause.
--
-- Every non-200 answer is counted (a 303 to /login would mean a lost session, which wrk itself
-- does not count as an error) and printed by done() with the rates and latencies, on one
-- line that the shell script reads.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local cookies = {}
local turn = 0
bad = 0

function init(args)
  local n = tonumber(os.getenv("WRK_THREADS") or "1")
  local i = 0
  for line in io.lines(os.getenv("WRK_COOKIES")) do
    if i % n == id then
      table.insert(cookies, "__Host-mshub=" .. line)
    end
    i = i + 1
  end
  if #cookies == 0 then
    error("no cookie for thread " .. id)
  end
  wrk.path = os.getenv("WRK_PATH") or "/"
end

function request()
  turn = turn % #cookies + 1
  return wrk.format("GET", nil, { ["Cookie"] = cookies[turn] })
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local non200 = 0
  for _, t in ipairs(threads) do
    non200 = non200 + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.0f p50=%.2f p90=%.2f p99=%.2f max=%.2f non200=%d socket_errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    non200, e.connect + e.read + e.write + e.timeout))
end
