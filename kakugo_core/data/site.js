(function () {
  "use strict";
  function compare(a, b, numeric) {
    if (a === "" && b === "") { return 0; }
    if (a === "") { return 1; }   /* missing values always sort last */
    if (b === "") { return -1; }
    if (numeric) { return Number(a) - Number(b); }
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }
  function value(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    var v = cell.getAttribute("data-value");
    return v === null ? cell.textContent.trim() : v;
  }
  function sortBy(table, header) {
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var tbody = table.tBodies[0];
    var index = headers.indexOf(header);
    var numeric = header.getAttribute("data-type") === "number";
    var dir = header.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", dir);
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (r1, r2) {
      var a = value(r1, index), b = value(r2, index);
      var c = compare(a, b, numeric);
      if (c !== 0 && a !== "" && b !== "" && dir === "descending") { c = -c; }
      if (c === 0) { c = Number(r1.getAttribute("data-order")) - Number(r2.getAttribute("data-order")); }
      return c;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
  }
  function filter(table, input, counter) {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0, rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var text = rows[i].textContent.toLowerCase();
      var keep = words.every(function (w) { return text.indexOf(w) !== -1; });
      rows[i].hidden = !keep;
      if (keep) { shown++; }
    }
    if (counter) { counter.textContent = shown + " of " + rows.length + " rows"; }
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.tabIndex = 0;
      h.addEventListener("click", function () { sortBy(table, h); });
      h.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, h); }
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("input.filter"), function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var counter = document.getElementById(input.getAttribute("data-table") + "-count");
    input.addEventListener("input", function () { filter(table, input, counter); });
    filter(table, input, counter);
  });
})();
