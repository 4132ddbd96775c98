-- wrk script of benches/load.sh: POSTs the body in the file $LOAD_BODY_FILE with the bearer
-- token $LOAD_TOKEN on every request; at the end prints one line `LOADRESULT {json}` with the
-- request count, the duration, the latency percentiles (microseconds) and wrk's error counts
-- (`status`: responses with a status above 399).

local file = assert(io.open(assert(os.getenv("LOAD_BODY_FILE")), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("LOAD_TOKEN"))

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LOADRESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
