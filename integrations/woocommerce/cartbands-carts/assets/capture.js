/* Posts the checkout's contact fields when one changes (see includes/capture.php). */
(function () {
	'use strict';
	var config = window.cartbandsCarts;
	var names = ['billing_email', 'billing_phone', 'cartbands_email_consent', 'cartbands_sms_consent'];
	var last = '';
	if (!config || !window.fetch) {
		return;
	}
	function send() {
		var form = new URLSearchParams({ action: 'cartbands_carts_capture', nonce: config.nonce });
		names.forEach(function (name) {
			var field = document.getElementById(name);
			if (field) {
				form.append(name, field.type === 'checkbox' ? (field.checked ? '1' : '0') : field.value);
			}
		});
		if (form.toString() === last) {
			return;
		}
		last = form.toString();
		window.fetch(config.url, { method: 'POST', credentials: 'same-origin', body: form });
	}
	document.addEventListener('change', function (event) {
		if (event.target && names.indexOf(event.target.id) !== -1) {
			send();
		}
	});
})();
