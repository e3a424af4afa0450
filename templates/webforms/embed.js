{% autoescape off %}/* Web form {{ key_json }}: fills the form's token, page, referrer and UTM parameters;
   without a <form data-webform> on the page, draws the form where this script stands. */
(function () {
  var key = {{ key_json }}, token = {{ token_json }}, html = {{ html_json }}, names = {{ fields_json }};
  var forms = document.querySelectorAll('form[data-webform="' + key + '"]');
  if (!forms.length) {
    var here = document.currentScript, box = document.createElement("div");
    box.innerHTML = html;
    if (here && here.parentNode) { here.parentNode.insertBefore(box, here); } else { document.body.appendChild(box); }
    forms = box.querySelectorAll("form");
  }
  var params = new URLSearchParams(window.location.search);
  var values = {_wf_token: token, _wf_page: window.location.href, _wf_referrer: document.referrer};
  names.forEach(function (name) { if (name.indexOf("utm_") === 0 && params.get(name)) { values[name] = params.get(name); } });
  Array.prototype.forEach.call(forms, function (form) {
    Object.keys(values).forEach(function (name) {
      var input = form.querySelector('input[name="' + name + '"]');
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        form.appendChild(input);
      }
      if (!input.value || name === "_wf_token") { input.value = values[name] || ""; }
    });
  });
})();
{% endautoescape %}
