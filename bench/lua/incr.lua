-- incr on one hot key: every request contends for bench/counter.
local req
function init(args)
  req = wrk.format("PATCH", "/v1/kv/bench/counter", {["Content-Type"] = "application/json"}, '{"op":"incr","amount":1}')
end
function request() return req end
