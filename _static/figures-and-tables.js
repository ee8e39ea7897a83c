// Figures and tables on a narrow screen (figures-and-tables.css).
document.addEventListener("DOMContentLoaded", () => {
  // Every figure links to its image at full size: on a phone, where a multi-panel figure fits
  // the text column only small, a tap opens it in a tab of its own, to be zoomed there.
  document.querySelectorAll("figure img, div.cell_output img").forEach((img) => {
    if (img.closest("a")) return;
    const link = Object.assign(document.createElement("a"), {
      href: img.src, target: "_blank", rel: "noopener", className: "figure-zoom",
      title: "Open the figure at full size",
    });
    img.replaceWith(link);
    link.appendChild(img);
  });
  // A results table wider than the column scrolls sideways in its box; phones hide that box's
  // scroll bar, so such a table is marked, and its caption says so.
  const mark = () => document.querySelectorAll("figure.asd-table").forEach((table) => {
    const box = table.querySelector("div");
    table.classList.toggle("asd-wide", box.scrollWidth > box.clientWidth + 1);
  });
  mark();
  window.addEventListener("resize", mark);
});
