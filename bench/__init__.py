"""The llm-vcr benchmark (`scripts/bench`): replay, lookup, recording, timing, files, memory.

`bench.run` drives it and prints the table; `bench.loadgen` is the load generator that runs in
its own process; `bench.canned_addon` is the fixed-answer mitmproxy script (mitmproxy's floor);
`bench.workload` makes the synthetic interactions, cassettes and flow files.
"""
