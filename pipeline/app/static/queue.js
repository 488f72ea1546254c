// The review queue: a box in the table head ticks or clears every "model klopt" box on the page.
// Without JavaScript each row is ticked by hand; the form works the same.
(function () {
  "use strict";
  var form = document.getElementById("bulk-form");
  var all = document.getElementById("pick-all");
  if (!form || !all) return;
  var boxes = Array.prototype.slice.call(form.querySelectorAll('input[type="checkbox"][name="pk"]'));
  all.hidden = boxes.length === 0;
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
  });
})();
