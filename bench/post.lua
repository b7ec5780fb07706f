-- wrk script for `python -m bench`: POST one AdmissionReview (the file named by
-- $BENCH_BODY) on every request, and print the run's figures as one JSON line.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()

-- Paced load (Debian's wrk is not wrk2: it has no rate option). With $BENCH_DELAY_MS set,
-- each connection waits that long on average after every answer before sending its next
-- request, through wrk's delay() hook. wrk takes whole milliseconds, so a fractional delay
-- is dithered: the floor or the ceiling, at random in the proportion that averages to it.
-- wrk's latency clock starts when the request is written, after the wait.
local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pace and pace > 0 then
  local whole = math.floor(pace)
  local fraction = pace - whole
  math.randomseed(os.time())
  delay = function()
    if math.random() < fraction then
      return whole + 1
    end
    return whole
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
