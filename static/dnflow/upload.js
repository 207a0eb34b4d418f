/* dnflow: the search form's upload, shown as it goes.
 *
 * An archive may weigh several GiB, and the browser's own sign of an upload (if any) is easy to
 * miss. htmx posts the form (see templates/searches/home.html) and reports the upload's progress;
 * this fills the form's #upload-progress bar: "Uploading big.jsonl: 1.20 GiB of 3.42 GiB (35%)",
 * then "checking the archive" once every byte is sent, or what went wrong.
 *
 * Without JavaScript the form is posted as a plain form and this does nothing.
 */
(function () {
  "use strict";

  var FORM = "search-form";

  // Sizes as the status page writes them while an archive is copied (pipeline.collecting).
  function readableSize(bytes) {
    var mib = bytes / 1048576;
    if (mib < 1024) return mib.toFixed(1) + " MiB";
    var gib = mib / 1024;
    return (gib < 10 ? gib.toFixed(2) : gib.toFixed(1)) + " GiB";
  }

  function chosenFile(form) {
    var input = form.querySelector("input[type=file]");
    return input && input.files && input.files.length ? input.files[0] : null;
  }

  function show(form, percent, text) {
    var box = form.querySelector("#upload-progress");
    if (!box) return;
    var bar = box.querySelector("progress");
    if (percent === null) bar.removeAttribute("value");  // indeterminate: the server is at work
    else bar.value = percent;
    box.querySelector("span").textContent = text;
    box.hidden = false;
  }

  function ours(event) {
    var form = event.detail && event.detail.elt;
    return form && form.id === FORM && chosenFile(form) ? form : null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = ours(event);
    if (!form) return;
    // The last refusal's messages no longer apply to what is being sent; the answer brings its own.
    form.querySelectorAll(".field-errors, .error").forEach(function (old) { old.hidden = true; });
    show(form, 0, "Uploading " + chosenFile(form).name + "…");
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = ours(event);
    if (!form || !event.detail.lengthComputable || !event.detail.total) return;
    var loaded = event.detail.loaded, total = event.detail.total;
    if (loaded >= total) {
      show(form, null, "Uploaded " + readableSize(total) + ": checking the archive…");
      return;
    }
    var percent = Math.floor((100 * loaded) / total);
    show(
      form,
      percent,
      "Uploading " + chosenFile(form).name + ": " + readableSize(loaded) + " of " + readableSize(total) +
        " (" + percent + "%). Keep this page open until the search's page appears."
    );
  });

  document.addEventListener("htmx:responseError", function (event) {
    var form = ours(event);
    if (form) {
      show(form, 0, "The server did not take the upload (HTTP " + event.detail.xhr.status + "). " +
        "Nothing was started: try again, or ask whoever runs this dnflow to look at its log.");
    }
  });

  document.addEventListener("htmx:sendError", function (event) {
    var form = ours(event);
    if (form) {
      show(form, 0, "The upload did not reach the server (the connection failed). Nothing was " +
        "started: check the connection and start again.");
    }
  });
})();
