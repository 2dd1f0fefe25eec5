-- Acquire/release on MANY resources, 64 clients: every acquire names a new resource (no contention);
-- each lease granted is released with its fencing token by a later request. Half acquires, half releases.
granted, released, bad, n = 0, 0, 0, 0
local held = {}
function request()
  local lease = table.remove(held)
  if lease then return wrk.format("DELETE", "/v1/leases/" .. lease[1] .. "?fencing_token=" .. lease[2]) end
  n = n + 1
  return wrk.format("POST", "/v1/leases/bench-many/" .. n, {["Content-Type"] = "application/json"},
                    '{"holder":"bench","ttl":30}')
end
function response(status, headers, body)
  if status == 201 then
    granted = granted + 1
    table.insert(held, {string.match(body, '"resource":"([^"]+)"'), string.match(body, '"fencing_token":(%d+)')})
  elseif status == 200 then
    released = released + 1
  else
    bad = bad + 1
  end
end
function extra_fields(summary)
  local secs = summary.duration / 1e6
  return string.format(',"granted":%d,"granted_per_s":%.1f,"released":%d,"unexpected":%d',
                       sum("granted"), sum("granted") / secs, sum("released"), sum("bad"))
end
