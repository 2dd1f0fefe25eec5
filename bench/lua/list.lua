-- list by prefix: 100 entries with values per request.
local req
function init(args) req = wrk.format("GET", "/v1/kv/bench?prefix=hot&limit=100") end
function request() return req end
