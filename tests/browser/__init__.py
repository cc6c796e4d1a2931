"""The real IDE in a real browser: headless Debian Chromium driving code-server's workbench.

`workbench.py` is the reusable driver (also for the through-the-hub tests in tests/e2e/),
`ide.py` starts what the browser talks to. Screenshots of every step land in
test-artifacts/browser/ (git-ignored); failed tests leave a FAILED-*.png there too.

Files:
 - test_workbench_via_gateway.py: token flow, connection, edit + save, terminal, on the gateway's
   port and on PORT's /WAIIDE/ sub-path; a 100 MiB download from the Explorer, sha256-checked.
 - test_gateway_restart.py: the open workbench resumes its connection after the gateway restarts
   on the same port (no reload); control: an IDE restart does show "Cannot reconnect".
"""
