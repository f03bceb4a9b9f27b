-- Shared by every script of the index benchmark: thread numbering, reading the data
-- files the harness wrote, and one JSON line of results for the harness to parse.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
end

function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if #line > 0 then lines[#lines + 1] = line end
  end
  if #lines == 0 then error("no lines in " .. path) end
  return lines
end

function seed_random()
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKRESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end

-- devices.txt: "credential<TAB>address" per simulated device.
function read_devices(path)
  local tokens, hosts = {}, {}
  for _, line in ipairs(read_lines(path)) do
    local token, host = line:match("^([^\t]+)\t([^\t]+)$")
    tokens[#tokens + 1] = "Bearer " .. token
    hosts[#hosts + 1] = host
  end
  return tokens, hosts
end
