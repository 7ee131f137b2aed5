-- wrk script: POST the JSON bodies listed in a file (one per line) to /api/v1/buildids, in turn.
--   wrk -t2 -c16 -d10s --latency -s bench/lookup_batch.lua http://host:port -- bodies.txt
-- Each wrk thread has its own Lua state; threads start at different offsets.

local bodies = {}
local i = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("offset", threads)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  i = (offset or 0) * 7 % #bodies
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/api/v1/buildids", {["Content-Type"] = "application/json"},
                    bodies[i])
end
