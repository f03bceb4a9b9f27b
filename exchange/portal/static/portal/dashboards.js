/*
 * Draws the dashboards' charts with Chart.js (vendor/chartjs/, loaded before this file).
 *
 * Each chart's figures arrive as JSON in a <script type="application/json"> element that
 * Django's json_script filter writes (data, never run), named by its canvas's
 * data-chart attribute; so the pages need no inline script and work under a
 * Content-Security-Policy of script-src 'self'. The server has already put the same
 * figures in a table beside the canvas: the tooltips show that table's exact text, and
 * without this script (or Chart.js) the table is simply left open and the canvas hidden.
 *
 * JSON shape (exchange/portal/charts.py): {kind, labels, unit: {type: "currency",
 * currency} | {type: "bytes"} | {type: "count"}, locale, x_title, y_title, series: [{name,
 * values, texts}]} where values are decimal text in major units (money), whole bytes or
 * whole counts.
 */
(function () {
  "use strict";

  if (typeof window.Chart === "undefined") {
    return;
  }

  var reduceMotion = window.matchMedia &&
    window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var css = window.getComputedStyle(document.documentElement);
  var accent = css.getPropertyValue("--accent").trim() || "#2456c9";
  var palette = [accent, "#1e7a3c", "#8a5a00", "#b3261e", "#5d6678"];

  function moneyTicks(locale, currency) {
    var format = new Intl.NumberFormat(locale, {style: "currency", currency: currency});
    return function (value) { return format.format(value); };
  }

  function byteTicks(locale) {
    var format = new Intl.NumberFormat(locale, {maximumFractionDigits: 1});
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    return function (value) {
      var size = Number(value);
      var unit = 0;
      while (Math.abs(size) >= 1024 && unit < units.length - 1) {
        size /= 1024;
        unit += 1;
      }
      return format.format(size) + " " + units[unit];
    };
  }

  function countTicks(locale) {
    var format = new Intl.NumberFormat(locale, {maximumFractionDigits: 0});
    return function (value) { return format.format(value); };
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source) {
      return;
    }
    var spec = JSON.parse(source.textContent);
    // Babel names locales with an underscore (en_US), Intl with a hyphen (en-US).
    var locale = (spec.locale || document.documentElement.lang || "en").replace(/_/g, "-");
    try {
      Intl.NumberFormat.supportedLocalesOf([locale]);
    } catch (error) {
      locale = "en";
    }
    var ticks = spec.unit.type === "currency" ? moneyTicks(locale, spec.unit.currency)
      : spec.unit.type === "count" ? countTicks(locale) : byteTicks(locale);
    var line = spec.kind === "line";
    var datasets = spec.series.map(function (series, index) {
      var colour = palette[index % palette.length];
      return {
        label: series.name,
        data: series.values.map(Number),
        texts: series.texts,
        backgroundColor: line || !/^#[0-9a-f]{6}$/i.test(colour) ? colour : colour + "cc",
        borderColor: colour,
        borderWidth: line ? 2 : 0,
        pointRadius: line && spec.labels.length > 40 ? 0 : 3,
        tension: 0
      };
    });
    new window.Chart(canvas, {
      type: line ? "line" : "bar",
      data: {labels: spec.labels, datasets: datasets},
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: reduceMotion ? false : {duration: 300},
        interaction: {mode: "index", intersect: false},
        scales: {
          x: {title: {display: true, text: spec.x_title}, ticks: {autoSkip: true}},
          y: {
            beginAtZero: true,
            title: {display: true, text: spec.y_title},
            ticks: {callback: ticks}
          }
        },
        plugins: {
          legend: {position: "bottom"},
          tooltip: {
            callbacks: {
              label: function (context) {
                var texts = context.dataset.texts;
                var text = texts ? texts[context.dataIndex] : ticks(context.parsed.y);
                return context.dataset.label + ": " + text;
              }
            }
          }
        }
      }
    });
    canvas.parentElement.hidden = false;
    var figure = canvas.closest("figure");
    var table = figure && figure.querySelector("details[data-chart-table]");
    if (table) {
      table.open = false;
    }
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
