// Progressive enhancement for the receipt's journal note: a "Kopiera texten" button. Without
// JavaScript the note is a readonly text area the counselor selects and copies by hand; the
// button stays hidden. No inline script: the page CSP allows only same-origin files.
(function () {
  "use strict";
  function copy(area) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(area.value);
    }
    area.focus();
    area.select();
    return document.execCommand("copy") ? Promise.resolve() : Promise.reject();
  }
  document.querySelectorAll("button.copy-button[data-copy]").forEach(function (button) {
    var area = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentElement.querySelector(".copy-status");
    if (!area) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      copy(area).then(
        function () { if (status) status.textContent = "Kopierad – klistra in den i journalen."; },
        function () {
          area.focus();
          area.select();
          if (status) status.textContent = "Markerad – kopiera med Ctrl+C (⌘C på Mac).";
        }
      );
    });
  });
})();
