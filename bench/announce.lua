-- wrk script: POST /v1/announce with varying contents and ports, so the tracker does real
-- work (inserting, expiring, picking 50 peers from swarms that grow to hundreds).
-- Usage: wrk -t2 -c64 -d10s -s bench/announce.lua http://127.0.0.1:7000
local counter = 0
local roots = {}
for i = 1, 16 do
  roots[i] = string.format("%064x", i * 7919)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local root = roots[(counter % 16) + 1]
  local port = 1024 + (counter % 500)
  local body = string.format(
    '{"blake3":"%s","port":%d,"peer_id":"bench-%d","have":"partial","event":"update"}',
    root, port, port)
  return wrk.format(nil, "/v1/announce", nil, body)
end
