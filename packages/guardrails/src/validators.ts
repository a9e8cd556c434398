import { isValidIBAN } from "ibantools";
import { type CountryCode, parsePhoneNumberFromString } from "libphonenumber-js/min";

/**
 * The checks that turn a pattern's candidate into a finding: checksums and the ranges the
 * numbering plans leave unused. Each takes the matched text.
 */

/** The Luhn (mod 10) checksum of a card number's digits. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let index = 0; index < digits.length; index++) {
    let digit = digits.charCodeAt(digits.length - 1 - index) - 48;
    if (index % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

// Issuer prefixes and lengths: Visa 4 (13, 16, 19); Mastercard 51-55 and 2221-2720 (16);
// American Express 34, 37 (15); Discover 6011, 644-649, 65 (16-19); JCB 3528-3589 (16-19);
// Diners Club 36, 38, 300-305 (14-19); UnionPay 62 (16-19).
const issuers: readonly [RegExp, readonly number[]][] = [
  [/^4/, [13, 16, 19]],
  [/^(5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)/, [16]],
  [/^3[47]/, [15]],
  [/^(6011|64[4-9]|65)/, [16, 17, 18, 19]],
  [/^35(2[89]|[3-8]\d)/, [16, 17, 18, 19]],
  [/^(36|38|30[0-5])/, [14, 15, 16, 17, 18, 19]],
  [/^62/, [16, 17, 18, 19]],
];

/** A payment card number: an issuer's prefix and length, and the Luhn checksum. */
export function isCardNumber(text: string): boolean {
  const digits = text.replace(/[\s-]/g, "");
  const issuer = issuers.find(([prefix]) => prefix.test(digits));
  return Boolean(issuer?.[1].includes(digits.length)) && passesLuhn(digits);
}

/** A US Social Security number: no area 000, 666 or 900-999, no group 00, no serial 0000. */
export function isSsn(text: string): boolean {
  const [area, group, serial] = text.split("-");
  return (
    area !== "000" &&
    area !== "666" &&
    !area?.startsWith("9") &&
    group !== "00" &&
    serial !== "0000"
  );
}

/** An IBAN, by its country's length and format and the mod-97 check (ibantools). */
export function isIban(text: string): boolean {
  return isValidIBAN(text.replace(/\s/g, "").toUpperCase());
}

/** An IPv4 address: four octets of 0-255, none with a leading zero. */
export function isIpv4(text: string): boolean {
  return text
    .split(".")
    .every((octet) => octet === "0" || (!octet.startsWith("0") && Number(octet) <= 255));
}

/**
 * A phone number valid in its numbering plan (libphonenumber-js), international with its "+",
 * or national in `region`. A number of the North American plan (+1) must also keep its groups
 * of 3, 3 and 4 digits whole, as that plan always writes them: they may run together ("650
 * 2530000") but none is split ("2024-0042-17" is an order number and "2024-03-15 10" a date and
 * an hour, though their digits make valid numbers).
 */
export function isPhoneNumber(text: string, region: string): boolean {
  const number = parsePhoneNumberFromString(text, {
    defaultCountry: region as CountryCode,
    extract: false,
  });
  if (!number?.isValid()) return false;
  return number.countryCallingCode !== "1" || keepsNanpGroups(text, number.ext?.length ?? 0);
}

/** Whether every break between digits falls outside a North American number or between its groups. */
function keepsNanpGroups(text: string, extensionDigits: number): boolean {
  const digits = text.replace(/\D/g, "").length;
  // Digits before the 10 of the national number: the country code or trunk prefix 1.
  const first = digits - extensionDigits - 10;
  let seen = 0;
  let broken = false;
  for (const char of text) {
    if (char >= "0" && char <= "9") {
      const position = seen - first;
      if (broken && position > 0 && position < 10 && position !== 3 && position !== 6) return false;
      broken = false;
      seen++;
    } else if (seen > 0) broken = true;
  }
  return true;
}
