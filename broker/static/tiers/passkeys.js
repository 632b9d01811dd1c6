/* Tiers: passkeys (WebAuthn) at the second-factor step and on the security page.
 *
 * The server makes each ceremony's options with a fresh challenge (kept in the session, used once); this
 * script turns their base64url fields into bytes, hands them to navigator.credentials, and sends the
 * authenticator's answer back as JSON with the CSRF token. The server verifies it; nothing is decided here.
 *
 * On /accounts/2fa/ (security/two_factor.html): #passkey-login, a button that logs in with a passkey.
 * On /accounts/security/ (security/security.html): #passkey-register, a form that adds a passkey.
 * Both stay hidden without JavaScript or without WebAuthn in the browser; codes work without either.
 * Messages come translated from the elements' data-* attributes or the server's problem details; the
 * pages need no inline script.
 */
(function () {
  "use strict";

  if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
    return; // the pages' codes and forms work without passkeys
  }

  // --- bytes and encodings ---------------------------------------------------------------------------------

  function toBase64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    bytes.forEach((byte) => {
      binary += String.fromCharCode(byte);
    });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(text) {
    let standard = String(text).replace(/-/g, "+").replace(/_/g, "/");
    while (standard.length % 4 !== 0) {
      standard += "=";
    }
    const binary = atob(standard);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function descriptors(list) {
    return (list || []).map((descriptor) => ({ ...descriptor, id: fromBase64url(descriptor.id) }));
  }

  function creationOptions(json) {
    return {
      ...json,
      challenge: fromBase64url(json.challenge),
      user: { ...json.user, id: fromBase64url(json.user.id) },
      excludeCredentials: descriptors(json.excludeCredentials),
    };
  }

  function requestOptions(json) {
    return { ...json, challenge: fromBase64url(json.challenge), allowCredentials: descriptors(json.allowCredentials) };
  }

  // A credential as JSON (the WebAuthn Level 3 shape py_webauthn reads), with its response's own fields.
  function credentialJSON(credential, response) {
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toBase64url(credential.response.clientDataJSON), ...response },
    };
  }

  function registrationJSON(credential) {
    const response = credential.response;
    return credentialJSON(credential, {
      attestationObject: toBase64url(response.attestationObject),
      transports: typeof response.getTransports === "function" ? response.getTransports() : [],
    });
  }

  function authenticationJSON(credential) {
    const response = credential.response;
    return credentialJSON(credential, {
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
    });
  }

  // --- talking to the server -------------------------------------------------------------------------------

  class Refusal extends Error {}

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
    if (cookie) {
      return decodeURIComponent(cookie.slice("csrftoken=".length));
    }
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
    let answer = {};
    try {
      answer = await response.json();
    } catch (error) {
      answer = {};
    }
    if (!response.ok) {
      throw new Refusal(answer.detail || "");
    }
    return answer;
  }

  // What to tell the person: the server's reason, a cancelled ceremony, or the page's general message.
  function explain(element, error) {
    if (error instanceof Refusal && error.message) {
      return error.message;
    }
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
      return element.dataset.cancelled;
    }
    return element.dataset.failed;
  }

  function say(status, text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  // --- the second-factor step ------------------------------------------------------------------------------

  function setUpLogin(section) {
    const button = document.getElementById("passkey-login-button");
    const status = document.getElementById("passkey-login-status");
    section.hidden = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      say(status, section.dataset.working, false);
      try {
        const options = await post(section.dataset.optionsUrl, {});
        const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
        const verifyUrl = `${section.dataset.verifyUrl}?${new URLSearchParams({ next: section.dataset.next })}`;
        const answer = await post(verifyUrl, { credential: authenticationJSON(credential) });
        window.location.assign(answer.redirect);
      } catch (error) {
        say(status, explain(section, error), true);
        button.disabled = false;
      }
    });
  }

  // --- the security page -----------------------------------------------------------------------------------

  function setUpRegistration(form) {
    const status = document.getElementById("passkey-register-status");
    const button = form.querySelector("button[type=submit]");
    const unsupported = document.getElementById("passkey-unsupported");
    form.hidden = false;
    if (unsupported) {
      unsupported.hidden = true;
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = form.elements.name.value.trim();
      button.disabled = true;
      say(status, form.dataset.working, false);
      try {
        const options = await post(form.dataset.optionsUrl, {});
        const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
        const answer = await post(form.dataset.registerUrl, { name, credential: registrationJSON(credential) });
        window.location.assign(answer.redirect);
      } catch (error) {
        say(status, explain(form, error), true);
        button.disabled = false;
      }
    });
  }

  const login = document.getElementById("passkey-login");
  if (login) {
    setUpLogin(login);
  }
  const registration = document.getElementById("passkey-register");
  if (registration) {
    setUpRegistration(registration);
  }
})();
