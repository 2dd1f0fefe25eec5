-- Shared by every scenario (bench/run.py prepends it): per-thread counters and a JSON summary line.
-- A scenario may define `count(status, body)` to tally its own outcomes (e.g. CAS conflicts).
local threads = {}
function setup(thread) table.insert(threads, thread) end

function report(summary, latency, extra)
  local e = summary.errors
  local us = summary.duration
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,' ..
    '"max_ms":%.3f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}%s}\n',
    summary.requests, us / 1e6, summary.requests / (us / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.status, e.timeout, extra or ""))
end

function sum(name)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get(name) or 0) end
  return total
end

function done(summary, latency, requests)
  local extra = nil
  if extra_fields then extra = extra_fields(summary) end
  report(summary, latency, extra)
end
