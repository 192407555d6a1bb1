#!/bin/sh
# The "browser" of the tray end-to-end test: the app opens consent pages through $BROWSER;
# this hands each URL to the test (one per line in $TETHER_E2E_URLS), whose HTTP client
# plays the owner on the provider's consent pages.
printf '%s\n' "$1" >> "${TETHER_E2E_URLS:?set by the test}"
