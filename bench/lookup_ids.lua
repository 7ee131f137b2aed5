-- wrk script: GET the request paths listed in a file (one per line), in turn.
--   wrk -t2 -c16 -d10s --latency -s bench/lookup_ids.lua http://host:port -- paths.txt
-- Each wrk thread has its own Lua state; threads start at different offsets.

local paths = {}
local i = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("offset", threads)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  i = (offset or 0) * 997 % #paths
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
