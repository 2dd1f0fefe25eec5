-- semvec POST /v1/run on the session "bench" (10,000 memories), a new question each time, no stored answer.
local reqs, i = {}, 0
function init(args)
  local h = {["Content-Type"] = "application/json"}
  local topics = {"billing database", "deploy kubernetes", "retry policy", "cache eviction", "auth tokens",
                  "queue backlog", "search ranking", "metrics export", "backup restore", "rate limits"}
  for k = 0, 999 do
    local q = "what do we know about " .. topics[k % #topics + 1] .. " item " .. k
    reqs[k + 1] = wrk.format("POST", "/v1/run", h, '{"session_id":"bench","message":"' .. q .. '"}')
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
