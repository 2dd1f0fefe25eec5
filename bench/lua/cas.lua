-- compare-and-set retry loop on one hot key (bench/cas), 64 clients: read the version, PUT with
-- If-Match; on 409 version_conflict read again and retry. The version last seen is shared by the
-- thread's connections (wrk has one Lua state per thread), which is what a retrying client does.
known, need_read = 0, true
ok, conflicts, reads, bad = 0, 0, 0, 0
local get_req
function init(args) get_req = wrk.format("GET", "/v1/kv/bench/cas") end
function request()
  if need_read then
    need_read = false
    return get_req
  end
  return wrk.format("PUT", "/v1/kv/bench/cas", {["Content-Type"] = "application/json", ["If-Match"] = '"' .. known .. '"'},
                    '{"n":' .. (known + 1) .. '}')
end
function response(status, headers, body)
  if status == 200 or status == 201 then
    local v = tonumber(string.match(body, '"version":(%d+)'))
    if v then known = v end
    if string.find(body, '"value"', 1, true) then reads = reads + 1 else ok = ok + 1 end
  elseif status == 409 then
    conflicts = conflicts + 1
    need_read = true
  else
    bad = bad + 1
    need_read = true
  end
end
function extra_fields(summary)
  local secs = summary.duration / 1e6
  return string.format(',"cas_ok":%d,"cas_ok_per_s":%.1f,"conflicts":%d,"reads":%d,"unexpected":%d',
                       sum("ok"), sum("ok") / secs, sum("conflicts"), sum("reads"), sum("bad"))
end
