-- list by prefix: 1,000 entries with values per request (bench/l0..l999, preloaded).
local req
function init(args) req = wrk.format("GET", "/v1/kv/bench?prefix=l&limit=1000") end
function request() return req end
