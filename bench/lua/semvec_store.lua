-- semvec POST /v1/store on the session "bench" (10,000 memories and growing): one durable turn each.
local reqs, i = {}, 0
function init(args)
  local h = {["Content-Type"] = "application/json"}
  for k = 0, 999 do
    local a = "fact " .. k .. " the service uses component " .. (k % 37) .. " with setting " .. (k % 11)
    reqs[k + 1] = wrk.format("POST", "/v1/store", h, '{"session_id":"bench","response":"' .. a .. '"}')
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
