#!/usr/bin/env python3
"""Writes an IHE XDM zip (ITI TF-1 §16, TF-3 §4.2.4) whose documents are DICOM files:
IHE_XDM/SUBSET01/METADATA.XML lists each one (mimeType application/dicom, its SHA-1 and size).

usage: make_dicom_xdm.py OUT.zip INS AUTHOR_EMAIL FILE.dcm..."""
import hashlib
import os
import sys
import zipfile

out, ins, author, *files = sys.argv[1:]
pid = f"{ins}^^^&amp;1.2.250.1.213.1.4.8&amp;ISO"
entries = []
documents = []
for n, path in enumerate(files, 1):
    data = open(path, "rb").read()
    uri = f"IMG{n:05d}.DCM"
    documents.append((uri, data))
    entries.append(f"""
    <rim:ExtrinsicObject id="Document{n:02d}" mimeType="application/dicom" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
      <rim:Slot name="creationTime"><rim:ValueList><rim:Value>20261112093000</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="hash"><rim:ValueList><rim:Value>{hashlib.sha1(data).hexdigest()}</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="size"><rim:ValueList><rim:Value>{len(data)}</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="URI"><rim:ValueList><rim:Value>{uri}</rim:Value></rim:ValueList></rim:Slot>
      <rim:Name><rim:LocalizedString value="Image {n} ({os.path.basename(path)})"/></rim:Name>
      <rim:Classification classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" classifiedObject="Document{n:02d}" nodeRepresentation="">
        <rim:Slot name="authorInstitution"><rim:ValueList><rim:Value>Centre d'imagerie du Parc</rim:Value></rim:ValueList></rim:Slot>
        <rim:Slot name="authorTelecom"><rim:ValueList><rim:Value>^^Internet^{author}</rim:Value></rim:ValueList></rim:Slot>
      </rim:Classification>
      <rim:Classification classificationScheme="urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f" classifiedObject="Document{n:02d}" nodeRepresentation="N"/>
      <rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" registryObject="Document{n:02d}" value="{pid}">
        <rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name>
      </rim:ExternalIdentifier>
    </rim:ExtrinsicObject>""")
metadata = f"""<?xml version="1.0" encoding="UTF-8"?>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
  <rim:RegistryObjectList>{''.join(entries)}
    <rim:RegistryPackage id="SubmissionSet01"/>
  </rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>
"""
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("README.TXT", "Examen d'imagerie (IHE XDM)\r\n")
    z.writestr("IHE_XDM/SUBSET01/METADATA.XML", metadata)
    for uri, data in documents:
        z.writestr(f"IHE_XDM/SUBSET01/{uri}", data)
