"""`liveclass bench`: the media plane's benchmark (docs/benchmarks.md).

A real `liveclass serve` process, a synthetic teacher and synthetic students in worker processes,
all through the real HTTP and Socket.IO protocol; what recording a full class costs (the same class
unrecorded and recorded on one server); the naive MediaRelay relay as the baseline.

  command.py  the CLI subcommand (argument parsing only; the rest is imported when it runs)
  runner.py   servers, seeding, worker processes, measuring windows, the numbers
  worker.py   the teacher / students worker processes
  peers.py    publisher (knows when each frame left) and counting subscriber (never decodes)
  sources.py  synthetic camera, screen and voice; VP8 encoding and packetisation
  badlink.py  a user-space weak link (rate, loss, delay) between media clients and the server
  layered.py  two-layer publishers (pre-encoded VP8) and measuring subscribers (fps, layer, audio gaps)
  weaklink.py the weak-link scenario (--weak-link): students behind bad links, per-group fps, layer,
              lost audio, data per minute, the layer selection's CPU; its worker actors
  client.py   HTTP login/join and the Socket.IO protocol
  relay.py    the MediaRelay baseline server
  profile.py  cProfile summary of the server (profiled_serve.py runs it under cProfile)
  profiled_serve.py  `liveclass serve` under cProfile, switched by signals
  report.py   targets, tables, plot
"""
