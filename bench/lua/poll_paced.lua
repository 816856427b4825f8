-- Open receipt pages polling their status: each connection is one page, and it
-- waits a random 0-4 s (2 s on average, like htmx's `every 2s`) before each poll,
-- so N connections offer N / 2 polls per second. wrk times a request from its
-- send, so the pause is not counted as latency.
local paths = {}
local i = 0

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  math.randomseed(seed)
  i = math.random(#paths)
end

function delay()
  return math.random(0, 4000)
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
