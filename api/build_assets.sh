#!/bin/sh
# Vendors the pages' front-end libraries (Leaflet, Chart.js) from the npm registry into
# api/static/vendor/, so the API serves them itself (no CDN at run time). The result is committed; re-run after changing
# api/web/package.json (then commit package-lock.json and api/static/vendor/ together).
#   api/build_assets.sh            install exactly what package-lock.json pins, copy the files
#   api/build_assets.sh --update   re-resolve package.json first (rewrites package-lock.json)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
web="$here/web"
vendor="$here/static/vendor"
cd "$web"
if [ "${1:-}" = "--update" ]; then
    npm install --package-lock-only --ignore-scripts --no-audit --no-fund
fi
# --ignore-scripts: nothing from the registry runs on this machine.
npm ci --ignore-scripts --no-audit --no-fund
rm -rf "$vendor/leaflet"
mkdir -p "$vendor/leaflet/images"
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css \
   node_modules/leaflet/LICENSE "$vendor/leaflet/"
cp node_modules/leaflet/dist/images/*.png "$vendor/leaflet/images/"
version=$(node -p "require('./node_modules/leaflet/package.json').version")
echo "leaflet $version" > "$vendor/VERSIONS"
# Chart.js for the transparency page: its UMD build (one file, @kurkle/color bundled in).
rm -rf "$vendor/chartjs"
mkdir -p "$vendor/chartjs"
cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/LICENSE.md "$vendor/chartjs/"
version=$(node -p "require('./node_modules/chart.js/package.json').version")
echo "chart.js $version" >> "$vendor/VERSIONS"
rm -rf node_modules
echo "vendored into $vendor: $(cat "$vendor/VERSIONS")"
