-- Deliver pre-signed webhook events (one "signature<TAB>body" per line in args[1]).
-- Thread k of args[2] threads sends lines k, k+n, k+2n, ... each once; if a thread
-- runs out it starts over, and those repeats are duplicates the shop must answer
-- with a 200 no-op. done() prints how many were acknowledged and repeated.
local threads = {}
local count = 0

function setup(thread)
  thread:set("id", count)
  count = count + 1
  table.insert(threads, thread)
end

local events = {}
local sent = 0
acked = 0
repeats = 0

function init(args)
  local n = tonumber(args[2])
  local k = 0
  for line in io.lines(args[1]) do
    if k % n == id then
      local sig, body = line:match("^([^\t]*)\t(.*)$")
      table.insert(events, { sig, body })
    end
    k = k + 1
  end
end

function request()
  sent = sent + 1
  if sent > #events then
    repeats = repeats + 1
  end
  local event = events[(sent - 1) % #events + 1]
  local headers = { ["Content-Type"] = "application/json", ["Stripe-Signature"] = event[1] }
  return wrk.format("POST", "/webhook", headers, event[2])
end

function response(status, headers, body)
  if status == 200 then
    acked = acked + 1
  end
end

function done(summary, latency, requests)
  local total_acked, total_repeats = 0, 0
  for _, thread in ipairs(threads) do
    total_acked = total_acked + thread:get("acked")
    total_repeats = total_repeats + thread:get("repeats")
  end
  io.write(string.format("bench: acked=%d\nbench: repeats=%d\n", total_acked, total_repeats))
end
