-- Acquire/release on ONE contended resource, 64 clients: each client tries to acquire bench-hot; the one
-- that gets it releases it with its fencing token on its next request; the others' attempts are 409s.
granted, released, conflicts, bad = 0, 0, 0, 0
local held = {}
local acquire
function init(args)
  acquire = wrk.format("POST", "/v1/leases/bench-hot", {["Content-Type"] = "application/json"},
                       '{"holder":"bench","ttl":30}')
end
function request()
  local token = table.remove(held)
  if token then return wrk.format("DELETE", "/v1/leases/bench-hot?fencing_token=" .. token) end
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
