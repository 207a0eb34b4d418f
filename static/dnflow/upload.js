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

  // What the server would refuse only once every byte had arrived (hours for a big file), refused
  // before sending: a file over DNFLOW_MAX_UPLOAD_BYTES, or a file with a source that takes none.
  function refusal(form) {
    var file = chosenFile(form);
    var limit = Number(form.dataset.maxUploadBytes || 0);
    if (limit && file.size > limit) {
      return file.name + " is " + readableSize(file.size) + ", larger than the upload limit of " +
        readableSize(limit) + " (DNFLOW_MAX_UPLOAD_BYTES): nothing was sent. Import it on the server " +
        "instead, with manage.py run_search --archive FILE.";
    }
    var source = form.querySelector("[name=source]");
    var sources = (form.dataset.fileSources || "").split(" ");
    if (source && sources.indexOf(source.value) < 0) {
      return "To use this file, choose “Archive file” or “Tweet ids” as the source (or remove the file): nothing was sent.";
    }
    return "";
  }

  var uploading = false;

  // Leaving the page drops the upload: the browser asks first.
  window.addEventListener("beforeunload", function (event) {
    if (uploading) event.preventDefault();
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = ours(event);
    if (!form) return;
    var refused = refusal(form);
    if (refused) {
      event.preventDefault();
      show(form, 0, refused);
      form.querySelector("#upload-progress").classList.add("error");
      return;
    }
    form.querySelector("#upload-progress").classList.remove("error");
    // The last refusal's messages no longer apply to what is being sent; the answer brings its own.
    form.querySelectorAll(".field-errors, .error:not(#upload-progress)").forEach(function (old) { old.hidden = true; });
    uploading = true;
    // Every button waits (htmx disables Start): Estimate would send the whole file a second time.
    form.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
    show(form, 0, "Uploading " + chosenFile(form).name + "…");
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = ours(event);
    if (!form) return;
    uploading = false;
    form.querySelectorAll("button").forEach(function (button) { button.disabled = false; });
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
