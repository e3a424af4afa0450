// Draws each report chart from its JSON config (json_script); Chart.js is vendored.
(function () {
  function draw() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (!source || canvas.dataset.drawn) return;
      var config = JSON.parse(source.textContent);
      config.options = Object.assign({ responsive: true, maintainAspectRatio: false }, config.options || {});
      new window.Chart(canvas, config);
      canvas.dataset.drawn = "1";
    });
    // Custom dates only when the period says so.
    var period = document.getElementById("id_period");
    if (period) {
      var toggle = function () {
        document.querySelectorAll(".app-custom-dates").forEach(function (el) {
          el.hidden = period.value !== "custom";
        });
      };
      period.addEventListener("change", toggle);
      toggle();
    }
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
