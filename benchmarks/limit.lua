-- Bound every wrk thread in count as well as in time (-d): stop after WRK_LIMIT responses.
local limit = tonumber(os.getenv("WRK_LIMIT") or "100000")
local count = 0

response = function(status, headers, body)
  count = count + 1
  if count >= limit then
    wrk.thread:stop()
  end
end
