// Keyboard shortcuts on the review item page. Without JavaScript the form works the same by mouse.
//   t / d      choose the label group: themes or target groups (doelgroepen)
//   digits     toggle the n-th label of that group; two digits in a row (1 then 2) give label 12
//   r          then a digit 1-5: the replicability score
//   k          switch the kind between initiative and signal
//   s          save;  v  save and go to the next item;  n  skip to the next item
// Keys typed into the note or another text field are left alone.
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (!form) return;
  var groups = Array.prototype.slice.call(form.querySelectorAll("fieldset.labels"));
  var active = 0;
  var scoreMode = false;  // after "r" the next digit is the replicability score
  var scoreBox = form.querySelector("#replicability");  // the fieldset of score radios
  var digits = "";
  var timer = null;
  // How long a first digit waits for a second one before it is taken on its own.
  var SECOND_DIGIT_MS = 700;

  function boxes(group) {
    return group.querySelectorAll('input[type="checkbox"]');
  }

  function showActive() {
    groups.forEach(function (group, i) {
      group.classList.toggle("focus", !scoreMode && i === active);
    });
    if (scoreBox) scoreBox.classList.toggle("focus", scoreMode);
  }

  function setScore(digit) {
    var radio = form.querySelector('input[name="replicability"][value="' + digit + '"]');
    if (radio) {
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function toggleKind() {
    var radios = Array.prototype.slice.call(form.querySelectorAll('input[name="kind"]'));
    var current = radios.findIndex(function (r) { return r.checked; });
    var next = radios[(current + 1) % radios.length];
    if (next) {
      next.checked = true;
      next.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function toggle(number) {
    var list = boxes(groups[active]);
    if (number >= 1 && number <= list.length) {
      var box = list[number - 1];
      box.checked = !box.checked;
      box.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function flush() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (digits) { toggle(parseInt(digits, 10)); digits = ""; }
  }

  function typing(target) {
    var tag = target.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && !/^(checkbox|radio|submit|button)$/.test(target.type));
  }

  function submitWith(buttonId) {
    flush();
    var button = document.getElementById(buttonId);
    var owner = button.form || form;
    if (owner.requestSubmit) owner.requestSubmit(button); else button.click();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var key = event.key;
    if (/^[0-9]$/.test(key) && scoreMode) {
      event.preventDefault();
      setScore(key);
      scoreMode = false;
      showActive();
      return;
    }
    if (/^[0-9]$/.test(key)) {
      event.preventDefault();
      digits += key;
      var count = boxes(groups[active]).length;
      // Take the number now when no further digit could make a valid label number.
      if (parseInt(digits, 10) * 10 > count || digits.length >= 2) {
        flush();
      } else {
        if (timer) clearTimeout(timer);
        timer = setTimeout(flush, SECOND_DIGIT_MS);
      }
      return;
    }
    var groupIndex = groups.findIndex(function (g) { return g.dataset.key === key; });
    if (groupIndex >= 0) {
      event.preventDefault();
      flush();
      active = groupIndex;
      scoreMode = false;
      showActive();
      return;
    }
    if (key === "r") { event.preventDefault(); flush(); scoreMode = true; showActive(); return; }
    if (key === "k") { event.preventDefault(); toggleKind(); return; }
    if (key === "s") { event.preventDefault(); submitWith("save"); }
    else if (key === "v") { event.preventDefault(); submitWith("save-next"); }
    else if (key === "n") { event.preventDefault(); submitWith("skip"); }
  });

  showActive();
})();
