import { describe, expect, it } from "vitest";
import { scanText } from "../src/index.js";

// A corpus per detector: values that must be found (alone, and inside a sentence), and
// look-alikes that must not (order numbers, dates, versions, ids, failed checksums).
const corpus: Record<string, { found: string[]; notFound: string[] }> = {
  EMAIL_ADDRESS: {
    found: [
      "john.doe@example.com",
      "a+tag@mail.example.co.uk",
      "X_Y@sub-domain.io",
      "alice@example.com",
      "bob.smith+tag@mail.co.uk",
    ],
    notFound: [
      "user@localhost",
      "name@",
      "@handle",
      "v1.2.3@beta",
      "git@github",
      // SSH remotes and URL user names: a host, not a mailbox.
      "git@github.com:org/repo.git",
      "git@gitlab.example.com:group/sub/repo.git",
      "deploy@server.example.com:/var/www",
      "ssh://git@github.com/org/repo.git",
    ],
  },
  PHONE_NUMBER: {
    found: [
      "+1 650 253 0000",
      "(650) 253-0000",
      "+44 20 7031 3000",
      "+33 1 42 68 53 00",
      "650-253-0000",
      "1-800-275-2273",
      "1 (800) 275-2273",
      "1.650.253.0000",
      "+44 20 7946 0958",
      "(415) 555-0132",
      "415.555.0132",
      "+1-415-555-0132",
      "+49 30 901820",
      "+61 2 9374 4000",
      "+81 3-1234-5678",
      "+91 98765 43210",
    ],
    notFound: [
      "2024-11-30",
      "30.11.2024",
      "12:30:45",
      "v1.2.3",
      "1.2.3",
      "Order 4155552671",
      "ORD-2024-118833",
      "build 20241130.1",
      "ISBN 978-3-16-148410-0",
      // A date and the hour after it.
      "2024-03-15 10:30",
      "on 2024-03-15 10 people came",
      "2024-03-15 10:30:45",
      "15.03.2024 10:30",
      "2024-03-15T10:30:00Z",
      // Order and invoice numbers in groups no numbering plan writes.
      "PO 2024-0042-17",
      "INV 2024 0001 23",
      "#123456789",
      "INV-2024-000123",
      // Times, versions, ids, hashes, colours, timestamps and ISBNs.
      "10:30:15",
      "v2.14.3",
      "550e8400-e29b-41d4-a716-446655440000",
      "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f",
      "#ff5733",
      "1700000000000",
      "ISBN 978 3 16 148410 0",
      "978-0-306-40615-7",
    ],
  },
  CREDIT_CARD: {
    found: [
      "4111 1111 1111 1111",
      "5500-0000-0000-0004",
      "3782 822463 10005",
      "6011111111111117",
      "4012888888881881",
    ],
    notFound: [
      "4111 1111 1111 1112",
      "1234 5678 9012 3456",
      "2024-11-30",
      "0000 0000 0000 0000",
      "Invoice 4111111111111110",
    ],
  },
  IBAN_CODE: {
    found: [
      "GB82 WEST 1234 5698 7654 32",
      "DE89370400440532013000",
      "FR14 2004 1010 0505 0001 3M02 606",
    ],
    notFound: ["GB82 WEST 1234 5698 7654 33", "AB12 3456 7890 1234", "US12 3456 7890 1234 5678"],
  },
  US_SSN: {
    found: ["123-45-6789", "078-05-1121"],
    notFound: [
      "000-12-3456",
      "666-12-3456",
      "900-12-3456",
      "123-00-4567",
      "123-45-0000",
      "2024-11-30",
    ],
  },
  IP_ADDRESS: {
    found: [
      "192.168.1.10",
      "8.8.8.8",
      "2001:db8::1",
      "fe80::1ff:fe23:4567:890a",
      "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
      "10.0.0.12",
      "192.168.1.1",
    ],
    notFound: [
      "999.1.1.1",
      "1.2.3",
      "v1.2.3.4",
      "10.0.19045.2965",
      "01.02.03.04",
      "12:30:45",
      // Four-part versions: after "v" or a version word, or with a pre-release tag.
      "version 1.2.3.4",
      "Version: 1.2.3.4",
      "v 1.2.3.4",
      "ver. 1.2.3.4",
      "release 1.2.3.4",
      "build 1.2.3.4",
      "versions 1.2.3.4",
      "v10.0.19041.1",
      "1.2.3.4-beta",
      "v2.14.3",
      "15.03.2024",
    ],
  },
  OPENAI_API_KEY: {
    found: ["sk-proj-AbCdEf0123456789AbCdEf0123456789", "sk-0123456789abcdefghijklmnopqrstuv"],
    notFound: ["sk-short", "task-0123456789abcdefghijklmn", "desk-manager"],
  },
  ANTHROPIC_API_KEY: {
    found: ["sk-ant-api03-AbCdEf0123456789_AbCdEf0123456789-xyz"],
    notFound: ["sk-ant-short"],
  },
  GOOGLE_API_KEY: {
    found: ["AIzaSyA-0123456789abcdefghijklmnopqrstu"],
    notFound: ["AIzaShort", "AIzaSyA-0123456789abcdefghijklmnopqrstuvwxyz0123"],
  },
  AWS_ACCESS_KEY: {
    found: ["AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A"],
    notFound: ["AKIAIOSFODNN7", "XAKIAIOSFODNN7EXAMPLEX"],
  },
  GITHUB_TOKEN: {
    found: [
      "ghp_0123456789abcdefghijklmnopqrstuvwxyz",
      "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    ],
    notFound: ["ghp_short", "github_pat_x"],
  },
  SLACK_TOKEN: {
    found: ["xoxb-1234567890-0987654321-AbCdEfGhIjKl"],
    notFound: ["xoxb-", "xoxz-1234567890-0987"],
  },
  PRIVATE_KEY: {
    found: [
      "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----",
    ],
    notFound: [
      "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy\n-----END PUBLIC KEY-----",
    ],
  },
  JWT: {
    found: [
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
    notFound: ["eyJhbGciOiJIUzI1NiJ9", "eyJ.eyJ.sig"],
  },
};

describe("detectors", () => {
  for (const [entity, { found, notFound }] of Object.entries(corpus)) {
    it(`${entity}: finds each sample, alone and in a sentence, and none of the look-alikes`, () => {
      for (const value of found) {
        expect(scanText(value), value).toEqual([{ entity, start: 0, end: value.length }]);
        const sentence = `Please note: ${value}, thanks.`;
        expect(scanText(sentence), sentence).toEqual([
          { entity, start: 13, end: 13 + value.length },
        ]);
      }
      for (const value of notFound) {
        const hits = scanText(`Note ${value} here.`).filter((finding) => finding.entity === entity);
        expect(hits, value).toEqual([]);
      }
    });
  }

  it("gives a secret precedence over the digits inside it, and finds only what was asked for", () => {
    const text = "key sk-proj-4111111111111111abcdefghij and mail a@b.example";
    expect(scanText(text).map((finding) => finding.entity)).toEqual([
      "OPENAI_API_KEY",
      "EMAIL_ADDRESS",
    ]);
    expect(scanText(text, { entities: ["EMAIL_ADDRESS"] }).map((f) => f.entity)).toEqual([
      "EMAIL_ADDRESS",
    ]);
  });

  it("keeps a real address beside a version word, an email before a colon and an IP before its port", () => {
    const findings = (text: string) =>
      scanText(text).map((finding) => [finding.entity, text.slice(finding.start, finding.end)]);
    expect(findings("connect to 10.0.0.12 after the build")).toEqual([["IP_ADDRESS", "10.0.0.12"]]);
    expect(findings("the database at 10.0.0.5:5432 is up")).toEqual([["IP_ADDRESS", "10.0.0.5"]]);
    expect(findings("Write to alice@example.com: she answers")).toEqual([
      ["EMAIL_ADDRESS", "alice@example.com"],
    ]);
    expect(findings("mailto:alice@example.com")).toEqual([["EMAIL_ADDRESS", "alice@example.com"]]);
    expect(findings("Dial 1 650 253 0000 now")).toEqual([["PHONE_NUMBER", "1 650 253 0000"]]);
  });

  it("takes no date and hour for a national phone number, whatever the region", () => {
    for (const region of ["US", "DE", "GB", "FR", "IN", "CN", "BR", "JP"]) {
      for (const text of ["on 2024-03-15 10:30", "on 05.03.2024 10:30", "on 15.03.2024 10:30"]) {
        expect(scanText(text, { phoneRegion: region }), `${text} (${region})`).toEqual([]);
      }
    }
    expect(scanText("Ring 020 7946 0958 today", { phoneRegion: "GB" })).toHaveLength(1);
    expect(scanText("Ring 01 42 68 53 00 today", { phoneRegion: "FR" })).toHaveLength(1);
  });

  it("reads national phone numbers in the region it is given", () => {
    expect(scanText("Ring 030 901820 today", { phoneRegion: "DE" })).toHaveLength(1);
    expect(scanText("Ring 030 901820 today", { phoneRegion: "US" })).toHaveLength(0);
  });
});
