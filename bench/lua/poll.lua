-- Closed loop over many receipt status URLs (one path per line in args[1]).
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

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
