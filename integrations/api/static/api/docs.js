// The API docs page (/api/docs/): Swagger UI, vendored (static/vendor/swagger-ui), on
// this site's OpenAPI document. Nothing is fetched from elsewhere: no validator badge.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var csrfToken = root.getAttribute("data-csrf-token");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-schema-url"),
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    tryItOutEnabled: false,
    requestInterceptor: function (request) {
      // "Try it out" without a token uses the page's session: it needs the CSRF token.
      if (request.method && request.method !== "GET" && !request.headers.Authorization) {
        request.headers["X-CSRFToken"] = csrfToken;
      }
      return request;
    },
  });
})();
