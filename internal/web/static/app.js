// Small conveniences on top of pages that work without script.
"use strict";
document.addEventListener("click", function (e) {
  var b = e.target.closest("button.copy");
  if (!b) return;
  var el = document.getElementById(b.dataset.copy);
  if (!el) return;
  var text = el.textContent.trim();
  var done = function () { var was = b.textContent; b.textContent = "Copied"; setTimeout(function () { b.textContent = was; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { select(el); });
  } else {
    select(el);
    try { document.execCommand("copy"); done(); } catch (err) { /* selected: the user can copy */ }
  }
});
function select(el) {
  var r = document.createRange();
  r.selectNodeContents(el);
  var s = window.getSelection();
  s.removeAllRanges();
  s.addRange(r);
}
document.addEventListener("change", function (e) {
  var all = e.target.closest("input.select-all");
  if (!all) return;
  var form = all.closest("form");
  form.querySelectorAll('input[type=checkbox][name="' + all.dataset.target + '"]').forEach(function (c) { c.checked = all.checked; });
});
