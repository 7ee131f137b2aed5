-- wrk script: send the requests listed in a file (one per line), in turn. A line that starts
-- with "{" is a JSON body POSTed to /api/v1/buildids (a batch); any other line is a path to GET.
--   wrk -t2 -c16 -d10s --latency -s bench/lookup_ids.lua http://host:port -- lines.txt
-- Each wrk thread has its own Lua state; threads start at different offsets.

local lines = {}
local i = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("offset", threads)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then lines[#lines + 1] = line end
  end
  i = (offset or 0) * 997 % #lines
end

function request()
  i = i % #lines + 1
  local line = lines[i]
  if line:sub(1, 1) == "{" then
    return wrk.format("POST", "/api/v1/buildids", {["Content-Type"] = "application/json"}, line)
  end
  return wrk.format("GET", line)
end
