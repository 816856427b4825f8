-- Check out filled carts: each request POSTs /cart/checkout with the next cart's
-- cookie (one token per line in args[1]), so every checkout opens its own order
-- and reserves stock for the cart's three lines.
local tokens = {}
local i = 0

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
  math.randomseed(seed)
  i = math.random(#tokens)
end

function request()
  i = i % #tokens + 1
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "cart=" .. tokens[i],
  }
  return wrk.format("POST", "/cart/checkout", headers, "")
end
