-- 90/10 read/write mix on the 100 hot keys: every tenth request is a durable PUT.
local gets, puts, i = {}, {}, 0
function init(args)
  local h = {["Content-Type"] = "application/json", ["Authorization"] = wrk.headers["Authorization"]}
  for k = 0, 99 do
    gets[k + 1] = wrk.format("GET", "/v1/kv/bench/hot" .. k)
    puts[k + 1] = wrk.format("PUT", "/v1/kv/bench/hot" .. k, h, '{"n":' .. k .. ',"agent":"bench","ok":true}')
  end
end
function request()
  i = i + 1
  local k = i % 100 + 1
  if i % 10 == 0 then return puts[k] end
  return gets[k]
end
