// The chief draws a licence plate's box on a picture of the contact sheet: the box, in the
// pixels of the clip's own frames, is added to the "Cadres des plaques" field as T,X,Y,W,H.
// Typing the line in that field does the same without a mouse.
(function () {
  "use strict";
  var sheet = document.getElementById("planche");
  var field = document.getElementById("p-plaques");
  if (!sheet || !field || !sheet.dataset.largeur) return;
  var frameW = Number(sheet.dataset.largeur), frameH = Number(sheet.dataset.hauteur);
  var drawing = null;

  function inside(img, event) {
    var r = img.getBoundingClientRect();
    return [Math.min(Math.max(event.clientX - r.left, 0), r.width),
            Math.min(Math.max(event.clientY - r.top, 0), r.height)];
  }

  function place(d, p) {
    var x0 = Math.min(d.start[0], p[0]), y0 = Math.min(d.start[1], p[1]);
    d.mark.style.left = (d.img.offsetLeft + x0) + "px";
    d.mark.style.top = (d.img.offsetTop + y0) + "px";
    d.mark.style.width = Math.abs(p[0] - d.start[0]) + "px";
    d.mark.style.height = Math.abs(p[1] - d.start[1]) + "px";
  }

  sheet.querySelectorAll("img[data-t]").forEach(function (img) {
    img.draggable = false;
    img.addEventListener("mousedown", function (event) {
      event.preventDefault();
      var mark = document.createElement("div");
      mark.className = "cadre";
      img.parentNode.appendChild(mark);
      drawing = {img: img, mark: mark, start: inside(img, event)};
      place(drawing, drawing.start);
    });
  });
  window.addEventListener("mousemove", function (event) {
    if (drawing) place(drawing, inside(drawing.img, event));
  });
  window.addEventListener("mouseup", function (event) {
    if (!drawing) return;
    var d = drawing, p = inside(d.img, event), r = d.img.getBoundingClientRect();
    drawing = null;
    var kx = frameW / r.width, ky = frameH / r.height;
    var x = Math.round(Math.min(d.start[0], p[0]) * kx), y = Math.round(Math.min(d.start[1], p[1]) * ky);
    var w = Math.round(Math.abs(p[0] - d.start[0]) * kx), h = Math.round(Math.abs(p[1] - d.start[1]) * ky);
    w = Math.min(w, frameW - x); h = Math.min(h, frameH - y);
    if (w < 4 || h < 4) { d.mark.remove(); return; }  // a click, not a box
    var line = d.img.dataset.t + "," + x + "," + y + "," + w + "," + h;
    field.value = (field.value.trim() ? field.value.trim() + "\n" : "") + line;
    d.mark.title = line;
  });
})();
