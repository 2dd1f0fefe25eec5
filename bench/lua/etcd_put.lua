-- etcd durable PUT over 10,000 keys through the v3 HTTP JSON gateway: POST /v3/kv/put, base64 key and value
-- (etcd acknowledges after its WAL fsync, like Stigmer's PUT).
local reqs, i = {}, 0
local b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function base64(s)
  return ((s:gsub(".", function(x)
    local r, b = "", x:byte()
    for j = 8, 1, -1 do r = r .. (b % 2 ^ j - b % 2 ^ (j - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for j = 1, 6 do c = c + (x:sub(j, j) == "1" and 2 ^ (6 - j) or 0) end
    return b64:sub(c + 1, c + 1)
  end) .. ({"", "==", "="})[#s % 3 + 1])
end
function init(args)
  local h = {["Content-Type"] = "application/json"}
  for k = 0, 9999 do
    reqs[k + 1] = wrk.format("POST", "/v3/kv/put", h, '{"key":"' .. base64("bench/w" .. k) .. '","value":"' ..
                             base64('{"n":' .. k .. ',"agent":"bench","ok":true}') .. '"}')
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
