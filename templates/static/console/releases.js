// The release upload form with a progress bar. Without this script the form is posted as is
// and works the same; with it, the same form data goes by XMLHttpRequest so that its upload
// progress can be shown. The answer is the page the console redirects to (the list with the
// flash message) or an error page, whose message is shown next to the form, kept as filled.
"use strict";
(function () {
  function percent(loaded, total) {
    return total > 0 ? Math.floor((loaded * 100) / total) : 0;
  }

  function bind() {
    var form = document.getElementById("upload");
    if (!form || form.dataset.bound) { return; }
    form.dataset.bound = "1";
    var bar = document.getElementById("upload-progress");
    var status = document.getElementById("upload-status");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      var xhr = new XMLHttpRequest();
      var sent = 0;  // bytes of the body the browser reported sent
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) { return; }
        sent = e.loaded;
        bar.value = percent(e.loaded, e.total);
        status.textContent = "Uploading: " + bar.value + "% of " + e.total + " bytes";
      });
      xhr.addEventListener("load", function () {
        var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
        if (xhr.status >= 400) {
          var error = page.querySelector(".error");
          status.setAttribute("role", "alert");
          status.textContent = "Not uploaded: " + (error ? error.textContent : "error " + xhr.status);
          button.disabled = false;
          return;
        }
        // The list after the upload, with its message: replace the page's main part.
        var main = page.querySelector("main");
        if (main) {
          document.querySelector("main").replaceWith(document.adoptNode(main));
          if (xhr.responseURL) { history.replaceState(null, "", xhr.responseURL); }
          bind();
          var done = document.getElementById("upload-status");
          var doneBar = document.getElementById("upload-progress");
          doneBar.value = 100;
          doneBar.hidden = false;
          done.textContent = sent ? "Uploaded: 100% of " + sent + " bytes" : "Uploaded";
        }
      });
      xhr.addEventListener("error", function () {
        status.setAttribute("role", "alert");
        status.textContent = "Not uploaded: the connection failed. Try again.";
        button.disabled = false;
      });
      bar.value = 0;
      bar.hidden = false;
      status.removeAttribute("role");
      status.textContent = "Uploading…";
      button.disabled = true;
      xhr.send(new FormData(form));
    });
  }

  bind();
})();
