# The web UI in a real browser. Included by the root Makefile (include mk/*.mk).
#
#   make browser-test    builds auth, users, tasks and frontend, runs them on loopback and
#                        drives the page in headless Chromium (e2e/browser): signup, login,
#                        tasks with odd characters, logout, and the errors of a hop that is down;
#                        the trail of pods across two tasks and two auth replicas, lab
#                        failures, and the network page
#
# Chromium: /usr/bin/chromium (Debian: apt-get install chromium), or CHROMIUM=path. Without it
# the test skips, except under CI (CI set), where it fails. make test runs it too, as one of
# the e2e module's packages. A failed step saves a screenshot in BROWSER_ARTIFACTS
# ($TMPDIR/kub-demo-browser by default) and names it.
#
#   make browser-screenshot   the same tests, saving the page with its task list as
#                             docs/frontend.png (phone-sized; used by docs/frontend.md), and
#                             the trail (docs/trail.png, docs/trail-lab.png) and the network
#                             page (docs/network.png), used by docs/see-the-network.md

.PHONY: browser-test browser-screenshot

browser-test: ## only the browser test of the web UI (headless Chromium through the four binaries)
	cd e2e && $(GO) test -count=1 -v -run '^TestBrowser' ./browser/

browser-screenshot: ## the browser tests, saving docs/frontend.png, trail.png, trail-lab.png and network.png
	cd e2e && BROWSER_DOCS_SCREENSHOT=$(CURDIR)/docs/frontend.png BROWSER_DOCS_DIR=$(CURDIR)/docs $(GO) test -count=1 \
		-run '^(TestBrowserFlowThroughTheProxy|TestBrowserTrailAcrossReplicas|TestBrowserTrailLabFailure)$$' ./browser/
