-- durable PUT over 10,000 keys (acknowledged after the fsync'd commit).
local reqs, i = {}, 0
function init(args)
  local h = {["Content-Type"] = "application/json", ["Authorization"] = wrk.headers["Authorization"]}
  for k = 0, 9999 do
    reqs[k + 1] = wrk.format("PUT", "/v1/kv/bench/w" .. k, h, '{"n":' .. k .. ',"agent":"bench","ok":true}')
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
