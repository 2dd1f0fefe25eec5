-- Acquire/release on ONE contended resource, 64 clients: each client asks for the lease with a blocking
-- acquire (`wait`), so they queue first come, first served; the one granted it releases it with its fencing
-- token on its next request, which hands it to the next in line. granted/s is the hand-off rate.
granted, released, conflicts, bad = 0, 0, 0, 0
local held = {}
local acquire, path
function init(args)
  -- a resource of this run only: a lease the warm-up run left held must not block the measured one
  math.randomseed(os.time() + os.clock() * 1e6)
  path = "/v1/leases/bench-hot-" .. math.random(1, 1e9)
  acquire = wrk.format("POST", path, {["Content-Type"] = "application/json"}, '{"holder":"bench","ttl":30,"wait":30}')
end
function request()
  local token = table.remove(held)
  if token then return wrk.format("DELETE", path .. "?fencing_token=" .. token) end
  return acquire
end
function response(status, headers, body)
  if status == 201 then
    granted = granted + 1
    table.insert(held, string.match(body, '"fencing_token":(%d+)'))
  elseif status == 200 then
    released = released + 1
  elseif status == 409 then
    conflicts = conflicts + 1
  else
    bad = bad + 1
  end
end
function extra_fields(summary)
  local secs = summary.duration / 1e6
  return string.format(',"granted":%d,"granted_per_s":%.1f,"released":%d,"conflicts":%d,"unexpected":%d',
                       sum("granted"), sum("granted") / secs, sum("released"), sum("conflicts"), sum("bad"))
end
