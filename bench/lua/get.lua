-- key GET on 100 hot keys (bench/hot0..hot99, preloaded), round robin.
local reqs, i = {}, 0
function init(args)
  for k = 0, 99 do reqs[k + 1] = wrk.format("GET", "/v1/kv/bench/hot" .. k) end
end
function request() i = i % #reqs + 1; return reqs[i] end
