#!/bin/sh
# Vendors the pages' front-end libraries (Leaflet, Chart.js, intl-messageformat) and fonts (Noto Sans
# Arabic, Noto Sans Tifinagh) from the npm registry into
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
# intl-messageformat (FormatJS) for the pages' ICU messages: its one-file build is an ES module,
# which api/static/i18n.js imports.
rm -rf "$vendor/intl-messageformat"
mkdir -p "$vendor/intl-messageformat"
cp node_modules/intl-messageformat/intl-messageformat.iife.js \
   "$vendor/intl-messageformat/intl-messageformat.esm.js"
cp node_modules/intl-messageformat/LICENSE.md "$vendor/intl-messageformat/"
version=$(node -p "require('./node_modules/intl-messageformat/package.json').version")
echo "intl-messageformat $version" >> "$vendor/VERSIONS"
# Fonts for Arabic and Tifinagh text: the woff2 files of each script's subset, and the licence
# (SIL Open Font License); the @font-face rules are in api/static/fonts.css.
rm -rf "$vendor/fonts"
mkdir -p "$vendor/fonts/noto-sans-arabic" "$vendor/fonts/noto-sans-tifinagh"
cp node_modules/@fontsource/noto-sans-arabic/files/noto-sans-arabic-arabic-400-normal.woff2 \
   node_modules/@fontsource/noto-sans-arabic/files/noto-sans-arabic-arabic-700-normal.woff2 \
   node_modules/@fontsource/noto-sans-arabic/LICENSE "$vendor/fonts/noto-sans-arabic/"
cp node_modules/@fontsource/noto-sans-tifinagh/files/noto-sans-tifinagh-tifinagh-400-normal.woff2 \
   node_modules/@fontsource/noto-sans-tifinagh/LICENSE "$vendor/fonts/noto-sans-tifinagh/"
for font in noto-sans-arabic noto-sans-tifinagh; do
    version=$(node -p "require('./node_modules/@fontsource/$font/package.json').version")
    echo "@fontsource/$font $version" >> "$vendor/VERSIONS"
done
rm -rf node_modules
echo "vendored into $vendor: $(cat "$vendor/VERSIONS")"
